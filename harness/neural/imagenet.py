"""The ImageNet channel statistics that ImageNet-trained networks (VGG-16, ResNet, DeOldify's
encoder) normalise their RGB input by, float32."""

from __future__ import annotations

import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
