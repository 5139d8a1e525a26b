import keras

# Export is TensorFlow-only (DESIGN.md): under another backend these tests are
# not collected.
if keras.backend.backend() != "tensorflow":
    collect_ignore_glob = ["test_*.py"]
