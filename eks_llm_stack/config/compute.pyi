from .gpu_pool import *
