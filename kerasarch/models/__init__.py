"""Model families, one module each. Importing this package registers every builder."""

from kerasarch.models import alexnet, lenet, resnet, vgg  # noqa: F401
