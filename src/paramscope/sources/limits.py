"""Every limit the file readers enforce, in one place.

A checkpoint is untrusted input: these bound the work and memory a hostile file can demand
before we refuse it with a clean error. They are far above what real checkpoints need.
"""

MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors JSON header (the reference caps at 100 MB)
MAX_PICKLE_BYTES = 256 * 1024 * 1024  # one pickle stream (data.pkl of a 400B-param model is ~50 MB)
MAX_OPCODES = 50_000_000  # pickle opcodes interpreted
MAX_DEPTH = 256  # nesting of containers in a pickle
MAX_MEMO = 10_000_000  # pickle memo entries
MAX_TENSORS = 5_000_000  # tensors in one file or index
MAX_DIMS = 64  # dimensions of one tensor
MAX_ZIP_MEMBERS = 1_000_000
MAX_ZIP_RATIO = 200  # uncompressed / compressed size of a member we read
MAX_SHARDS = 100_000
