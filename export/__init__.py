"""Export stage: checkpoint -> validated ONNX -> FP16 ONNX -> TensorRT plans, bundled (needs torch for ONNX)."""
