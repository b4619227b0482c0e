"""Runtime stage: backends behind one contract, image and video stylization. Imports without torch."""
