import os
import shutil
import tempfile

# Quieter TensorFlow logs; must be set before TensorFlow is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Every test starts from the same seed and the float32 policy."""
    keras.utils.set_random_seed(1234)
    yield
    keras.config.set_dtype_policy("float32")
    # free_memory=False: Keras' clear_session otherwise runs a full gc.collect(),
    # which took 1.3 s per test once TensorFlow, tfds and the tasks were loaded
    # (minutes over the suite); Python's own collector still reclaims cycles.
    keras.backend.clear_session(free_memory=False)


@pytest.fixture(autouse=True, scope="session")
def _no_temp_folders_left():
    """This process's temporary files go to a folder of its own, removed at
    the end. tensorflow_datasets makes a `tmp…tfds` folder for each dataset
    info it reads (core/dataset_info.py, `tempfile.mkdtemp("tfds")`) and never
    removes it: the offline loader tests left about 15 per run. A folder per
    process, not a before/after listing of the shared temp dir, so that one
    pytest-xdist worker never removes another's folders while it works."""
    folder = tempfile.mkdtemp(prefix="keras-lstm-tests-")
    previous, tempfile.tempdir = tempfile.tempdir, folder
    yield
    tempfile.tempdir = previous
    shutil.rmtree(folder, ignore_errors=True)
