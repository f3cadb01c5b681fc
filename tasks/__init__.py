"""Luigi tasks of pvl8da: ``python -m luigi --module tasks <Task> ...`` from the repository root.

Importing this package (what ``--module tasks`` does) sets the project's command-line behaviour: a failed
task makes the command exit non-zero (``tasks.base.EXIT_CODES``, unless the configuration's ``[retcode]``
says otherwise), pvl8da's own log lines show at Luigi's log level once a task starts, and the command exits
without a last garbage collection (``tasks.base.skip_final_collection``).
"""
import luigi

from tasks.base import install_exit_codes, show_library_logs, skip_final_collection
from tasks.convert import ConvertPV  # noqa: F401
from tasks.synthetic import GenerateSyntheticScene  # noqa: F401
from tasks.download import DownloadLandsat8  # noqa: F401
from tasks.demo import Demo  # noqa: F401
from tasks.batch import ConvertAll, InferenceAll  # noqa: F401
from tasks.fcd import PrepareBiomePatches, TrainFCD, GenerateFCDMasks, TrainFCDPlus, FineTuneFCDPlus, TrainSupervised, EvaluateBiome, RunFCDPaper  # noqa: F401,E501
from tasks.training import BuildPseudoSimultaneousDataset, TrainCloudDetector, TrainCycleGAN, TrainAllCycleGAN, EvaluateDA, GenerateSyntheticPairs, TrainDefaultModels  # noqa: F401,E501
from tasks.inference import InferenceClouds, InferenceDA  # noqa: F401
from tasks.da_seeds import RunDASeeds  # noqa: F401
from tasks.fcd_seeds import RunFCDSeeds  # noqa: F401

install_exit_codes()
skip_final_collection()
luigi.Task.event_handler(luigi.Event.START)(lambda task: show_library_logs())
