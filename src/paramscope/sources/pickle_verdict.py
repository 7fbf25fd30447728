"""What loading a pickled file would do, from the globals it names: data-only, needs-code or
malicious.

The walker never imports or calls a name, so paramscope reads every pickle safely; this
verdict is for the *user*, who will load the file with their framework:

- ``data-only``: every name is on torch's ``weights_only=True`` allowlist (tensor and parameter
  rebuilds, storages, dtypes, ``OrderedDict``, ``torch.Size``, ...): ``torch.load`` loads it
  without running foreign code.
- ``needs-code``: it names classes or functions from other packages
  (``omegaconf.listconfig.ListConfig``, ``mypackage.models.ResNet``): loading imports them and
  needs ``weights_only=False`` (or ``torch.serialization.add_safe_globals``).
- ``malicious``: it reaches a function that runs commands, evaluates code, opens files or
  sockets, imports modules or unpickles nested data. No real checkpoint names these; a pickle
  that does is an attack, even when it also holds real weights (a trojaned checkpoint).

The allowlist mirrors ``torch._weights_only_unpickler._get_allowed_globals`` (torch 2.13); the
dangerous names are a denylist by module and by function, each with what it does.
"""

from __future__ import annotations

import _compat_pickle
from collections.abc import Iterable

from paramscope.core.printable import visible
from paramscope.core.report import PickleVerdict, Verdict
from paramscope.sources.pickle_walker import Global

DATA_ONLY_NAMES = frozenset(
    {
        "collections.OrderedDict",
        "collections.Counter",
        "torch.nn.parameter.Parameter",
        "torch.serialization._get_layout",
        "torch.Size",
        "torch.Tensor",
        "torch.device",
        "torch._tensor._rebuild_from_type_v2",
        "_codecs.encode",
        "builtins.bytearray",
        "builtins.set",
        "builtins.complex",
        "torch.storage.TypedStorage",
        "torch.storage.UntypedStorage",
        "torch.per_tensor_affine",
        "torch.per_tensor_symmetric",
        "torch.per_channel_affine",
        "torch.per_channel_symmetric",
        "torch.per_channel_affine_float_qparams",
    }
)
TORCH_TYPE_MODULES = frozenset({"torch", "torch.cuda", "torch.sparse", "torch.cuda.sparse"})
DTYPE_PREFIXES = ("float", "bfloat", "int", "uint", "complex", "bool", "qint", "quint", "bits")

# Whole modules whose every function does one of these things when called.
DANGEROUS_MODULES = {
    "os": "runs commands or touches files",
    "posix": "runs commands or touches files",
    "nt": "runs commands or touches files",
    "subprocess": "runs commands",
    "pty": "runs commands",
    "commands": "runs commands",
    "popen2": "runs commands",
    "multiprocessing": "starts processes",
    "socket": "opens network sockets",
    "ssl": "opens network sockets",
    "http": "opens network connections",
    "httplib": "opens network connections",
    "urllib": "opens network connections",
    "urllib2": "opens network connections",
    "urllib3": "opens network connections",
    "requests": "opens network connections",
    "ftplib": "opens network connections",
    "smtplib": "opens network connections",
    "telnetlib": "opens network connections",
    "webbrowser": "opens a browser",
    "shutil": "copies, moves or deletes files",
    "tempfile": "creates files",
    "glob": "lists files",
    "runpy": "runs Python code",
    "code": "runs Python code",
    "codeop": "compiles Python code",
    "pdb": "runs a debugger",
    "bdb": "runs a debugger",
    "timeit": "runs Python code",
    "importlib": "imports modules",
    "imp": "imports modules",
    "pkgutil": "imports modules",
    "zipimport": "imports modules",
    "ctypes": "calls native code",
    "cffi": "calls native code",
    "marshal": "loads code objects",
    "pickle": "unpickles nested data",
    "_pickle": "unpickles nested data",
    "cPickle": "unpickles nested data",
    "dill": "unpickles nested data",
    "cloudpickle": "unpickles nested data",
    "joblib": "unpickles nested data",
    "shelve": "unpickles nested data",
    "sys": "reaches the interpreter's state",
    "signal": "changes signal handling",
    "cProfile": "runs Python code",
    "profile": "runs Python code",
    "trace": "runs Python code",
    "doctest": "runs Python code",
    "site": "runs .pth files",
    "pydoc": "runs commands",
    "imaplib": "runs commands",
    "ensurepip": "installs packages",
    "venv": "creates environments and runs commands",
    "sqlite3": "opens files",
    "idlelib": "runs Python code",
    "_posixsubprocess": "runs commands",
    "logging": "opens files or sockets (its handlers)",
    "threading": "starts threads",
    "_thread": "starts threads",
    "asyncio": "runs commands or opens connections",
    "platform": "runs commands",
    "pip": "installs packages",
    "setuptools": "runs build code",
    "distutils": "runs build code",
}
DANGEROUS_FUNCTIONS = {
    "builtins.eval": "evaluates code",
    "builtins.exec": "runs code",
    "builtins.execfile": "runs code",
    "builtins.compile": "compiles code",
    "builtins.__import__": "imports modules",
    "builtins.getattr": "reaches any attribute (a way to any function)",
    "builtins.setattr": "changes any attribute",
    "builtins.delattr": "deletes any attribute",
    "builtins.globals": "reaches the interpreter's state",
    "builtins.locals": "reaches the interpreter's state",
    "builtins.vars": "reaches the interpreter's state",
    "builtins.open": "opens files",
    "builtins.file": "opens files",
    "builtins.input": "reads the terminal",
    "builtins.breakpoint": "runs a debugger",
    "builtins.apply": "calls any function",
    "builtins.reload": "imports modules",
    "builtins.exit": "exits the program",
    "builtins.type": "builds classes at load time",
    "builtins.object.__getattribute__": "reaches any attribute",
    "lightning.pytorch.core.saving.load_hparams_from_yaml": "reads files",
    "pytorch_lightning.core.saving.load_hparams_from_yaml": "reads files",
    "builtins.quit": "exits the program",
    "io.open": "opens files",
    "io.open_code": "opens files",
    "io.FileIO": "opens files",
    "_io.open": "opens files",
    "_io.FileIO": "opens files",
    "operator.attrgetter": "reaches any attribute (a way to any function)",
    "operator.methodcaller": "calls any method",
    "functools.reduce": "calls any function",
    "torch.load": "unpickles nested data",
    "torch.serialization.load": "unpickles nested data",
    "torch.jit.load": "loads TorchScript code",
    "torch.hub.load": "downloads and runs code",
    "torch.hub.load_state_dict_from_url": "downloads files",
    "torch.hub.download_url_to_file": "downloads files",
    "torch.package.PackageImporter": "imports packaged code",
    "torch.utils.cpp_extension.load": "compiles native code",
    "torch.utils.cpp_extension.load_inline": "compiles native code",
    "numpy.load": "unpickles nested data",
    "numpy.fromfile": "reads files",
    "numpy.loadtxt": "reads files",
    "numpy.testing._private.utils.runstring": "runs code",
    "pandas.read_pickle": "unpickles nested data",
    "types.FunctionType": "builds functions from code",
    "types.CodeType": "builds code objects",
    "types.LambdaType": "builds functions from code",
    "yaml.load": "constructs arbitrary objects",
    "yaml.unsafe_load": "constructs arbitrary objects",
    "torch.storage._load_from_bytes": "unpickles nested data",
    "torch._utils._rebuild_device_tensor_from_numpy": "rebuilds from numpy data",
    "torch.ops.load_library": "loads a native library",
    "torch.classes.load_library": "loads a native library",
    "uuid._popen": "runs commands",
    "uuid._get_command_stdout": "runs commands",
    "gzip.open": "opens files",
    "bz2.open": "opens files",
    "lzma.open": "opens files",
    "codecs.open": "opens files",
    "tarfile.open": "opens files",
    "zipfile.ZipFile": "opens files",
}
# Modules reached anywhere along a dotted name (``torch.os.system``, ``argparse._os.system``:
# attribute paths that STACK_GLOBAL resolves through a module's imports).
DANGEROUS_SEGMENTS = {
    "os": "runs commands or touches files",
    "_os": "runs commands or touches files",
    "posix": "runs commands or touches files",
    "nt": "runs commands or touches files",
    "subprocess": "runs commands",
    "_subprocess": "runs commands",
    "_posixsubprocess": "runs commands",
    "sys": "reaches the interpreter's state",
    "_sys": "reaches the interpreter's state",
    "builtins": "reaches eval, exec, open and __import__",
    "__builtin__": "reaches eval, exec, open and __import__",
    "__builtins__": "reaches eval, exec, open and __import__",
    "socket": "opens network sockets",
    "shutil": "copies, moves or deletes files",
    "pickle": "unpickles nested data",
    "_pickle": "unpickles nested data",
    "marshal": "loads code objects",
    "importlib": "imports modules",
    "runpy": "runs Python code",
    "ctypes": "calls native code",
    "pty": "runs commands",
}
# What a final attribute does wherever it is reached from (``pydoc.pipepager``, ``Path.write_text``).
DANGEROUS_ATTRIBUTES = {
    "system": "runs commands",
    "popen": "runs commands",
    "Popen": "runs commands",
    "_popen": "runs commands",
    "pipepager": "runs commands",
    "tempfilepager": "runs commands",
    "getoutput": "runs commands",
    "getstatusoutput": "runs commands",
    "check_output": "runs commands",
    "check_call": "runs commands",
    "fork_exec": "runs commands",
    "spawnv": "runs commands",
    "spawnvp": "runs commands",
    "spawnl": "runs commands",
    "spawnlp": "runs commands",
    "execv": "runs commands",
    "execvp": "runs commands",
    "execl": "runs commands",
    "execlp": "runs commands",
    "eval": "evaluates code",
    "exec": "runs code",
    "execfile": "runs code",
    "__import__": "imports modules",
    "import_module": "imports modules",
    "load_library": "loads a native library",
    "_forward_from_src": "runs Python code stored in the file",
    "reduce_graph_module": "runs Python code stored in the file",
    "reduce_package_graph_module": "runs Python code stored in the file",
    "reduce_deploy_graph_module": "runs Python code stored in the file",
    "addsitedir": "runs .pth files",
    "IMAP4_stream": "runs commands",
    "_run_pip": "installs packages",
    "write_text": "writes files",
    "write_bytes": "writes files",
    "unlink": "deletes files",
    "rmtree": "deletes files",
    "rmdir": "deletes files",
    "remove": "deletes files",
    "rename": "moves files",
    "symlink_to": "creates links",
    "hardlink_to": "creates links",
    "touch": "creates files",
    "mkdir": "creates folders",
    "read_text": "reads files",
    "read_bytes": "reads files",
    "loads": "unpickles or evaluates nested data",
    "run_path": "runs Python code",
    "run_module": "runs Python code",
}


def _canonical(target: Global) -> str:
    """The dotted name as Python 3 imports it: pickle's ``fix_imports`` renames Python 2 names
    (``__builtin__.long`` -> ``builtins.int``) when it loads a protocol < 3 pickle, as torch does."""
    key = (target.module, target.name)
    if key in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[key]
    else:
        module, name = _compat_pickle.IMPORT_MAPPING.get(target.module, target.module), target.name
    return f"{module}.{name}"


def is_data_only(target: Global) -> bool:
    """Whether torch's ``weights_only=True`` loader accepts this name."""
    return _data_only(target, _canonical(target))


def _data_only(target: Global, dotted: str) -> bool:
    if dotted in DATA_ONLY_NAMES:
        return True
    if target.module == "torch._utils" and target.name.startswith("_rebuild_"):
        return True
    if target.module in TORCH_TYPE_MODULES:
        name = target.name
        return name.endswith(("Storage", "Tensor")) or name.startswith(DTYPE_PREFIXES)
    return False


def _danger(target: Global, dotted: str) -> str | None:
    """What calling (or reaching) this name does, when that is not something data needs."""
    if dotted in DANGEROUS_FUNCTIONS:
        return DANGEROUS_FUNCTIONS[dotted]
    for module in (target.module, dotted.rpartition(".")[0]):  # as written, and as Python 3 names it
        if module.split(".", 1)[0] in DANGEROUS_MODULES:
            return DANGEROUS_MODULES[module.split(".", 1)[0]]
    if dotted.startswith(
        ("torch.hub.", "torch.package.", "numpy.testing.", "numpy.f2py.", "numpy.distutils.", "torch.fx.")
    ):
        return "runs or fetches code"
    if any(part.startswith("__") and part.endswith("__") for part in target.name.split(".")):
        return "reaches attributes behind a name (a way to any function)"
    segments = f"{target.module}.{target.name}".split(".")
    for segment in segments[1:]:
        if segment in DANGEROUS_SEGMENTS:
            return DANGEROUS_SEGMENTS[segment]
    return DANGEROUS_ATTRIBUTES.get(segments[-1])


WEIGHTS_ONLY_PROTOCOLS = frozenset({2, 3})  # the opcodes torch's weights_only loader implements


def verdict_of(names: Iterable[Global], protocols: Iterable[int] = ()) -> PickleVerdict:
    """The verdict on a file from every global its pickles named (sorted, escaped, deduplicated)
    and the protocols they were written in (``Names.protocols``)."""
    needs_code: set[str] = set()
    malicious: dict[str, str] = {}
    for target in names:
        dotted = _canonical(target)
        if _data_only(target, dotted):
            continue
        shown = visible(dotted)[:160]
        danger = _danger(target, dotted)
        if danger is None:
            needs_code.add(shown)
        else:
            malicious[shown] = danger
    if malicious:
        verdict = Verdict.MALICIOUS
    elif needs_code:
        verdict = Verdict.NEEDS_CODE
    else:
        verdict = Verdict.DATA_ONLY
    refused = tuple(sorted(set(protocols) - WEIGHTS_ONLY_PROTOCOLS))
    return PickleVerdict(verdict, tuple(sorted(needs_code)), tuple(sorted(malicious.items())), refused)


__all__ = ["is_data_only", "verdict_of"]
