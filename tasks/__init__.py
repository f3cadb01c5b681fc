"""Luigi tasks of pvl8da: ``python -m luigi --module tasks <Task> ...`` from the repository root."""
from tasks.convert import ConvertPV  # noqa: F401
from tasks.synthetic import GenerateSyntheticScene  # noqa: F401
from tasks.download import DownloadLandsat8  # noqa: F401
from tasks.demo import Demo  # noqa: F401
from tasks.batch import ConvertAll, InferenceAll  # noqa: F401
from tasks.fcd import PrepareBiomePatches, TrainFCD, GenerateFCDMasks, TrainFCDPlus, FineTuneFCDPlus, TrainSupervised, EvaluateBiome, RunFCDPaper  # noqa: F401,E501
from tasks.training import BuildPseudoSimultaneousDataset, TrainCloudDetector, TrainCycleGAN, TrainAllCycleGAN, EvaluateDA, GenerateSyntheticPairs, TrainDefaultModels  # noqa: F401,E501
from tasks.inference import InferenceClouds, InferenceDA  # noqa: F401
