"""Model families, one module each. Importing this package registers every builder."""

from kerasarch.models import alexnet, lenet, vgg  # noqa: F401
