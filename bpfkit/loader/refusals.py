"""Telling "the kernel cannot do this kind of program" apart from "this program is wrong".

A kernel that cannot build BPF trampolines (or lacks tp_btf, LSM) refuses fentry/fexit/... loads
with EPERM or ENOTSUPP; the loader and the attach code turn that into FeatureNotSupported with the
reason :mod:`bpfkit.features` found, instead of a bare errno or a misleading verifier error.

Example::

    feature_for_section("fexit/do_unlinkat")   # 'fexit'
    err = load_failure("fentry/vfs_read", "on_read", errno.EPERM)   # FeatureNotSupported or None
"""
from __future__ import annotations

import errno
from typing import Optional

from .. import features
from ..errors import ENOTSUPP, FeatureNotSupported

TRAMPOLINE_KINDS = ("fentry", "fexit", "fmod_ret", "fentry.s", "fexit.s", "fmod_ret.s", "freplace")
REFUSALS = (errno.EPERM, errno.EOPNOTSUPP, ENOTSUPP)


def feature_for_section(section: str) -> Optional[str]:
    """The :mod:`bpfkit.features` name a BTF-attached program of ``section`` depends on.

    Example::

        feature_for_section("fexit/do_unlinkat")   # 'fexit'
        feature_for_section("kprobe/x")           # None
    """
    kind = section.partition("/")[0]
    if kind in TRAMPOLINE_KINDS:
        return "fexit" if kind.startswith("fexit") else "fentry"
    if kind == "tp_btf":
        return "tp_btf"
    if kind.startswith("lsm"):
        return "prog:lsm"
    return None


def refusal(section: str, err: int, what: str) -> Optional[FeatureNotSupported]:
    """FeatureNotSupported for ``what`` when ``err`` is the kernel refusing the feature ``section``
    needs (None when the feature is there, so the error is about the program itself)."""
    feature = feature_for_section(section)
    if feature is None or err not in REFUSALS:
        return None
    ok, reason = features.check(feature)
    if ok:
        return None
    return FeatureNotSupported(f"{what}: {reason}", err, feature=feature.split(":")[-1])


def load_failure(section: str, program: str, err: int) -> Optional[FeatureNotSupported]:
    """If program ``program`` of ``section`` failed to load with ``err`` because the kernel lacks
    the feature, the FeatureNotSupported to raise instead of a bare errno (None otherwise).

    Example::

        err = load_failure("fentry/vfs_read", "on_read", errno.EPERM)
        if err is not None:
            raise err
    """
    return refusal(section, err, f"program {program!r} (SEC({section!r})) cannot load")
