from .base import ActsAlgorithm
class ActsTrackFit(ActsAlgorithm):
    pass
