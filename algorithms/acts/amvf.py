from .base import ActsAlgorithm
class ActsAMVF(ActsAlgorithm):
    pass
