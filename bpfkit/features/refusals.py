"""Telling "the kernel cannot do this kind of program" apart from "this program is wrong".

A kernel that cannot build BPF trampolines (or lacks tp_btf, LSM) refuses fentry/fexit/... loads
with EPERM or ENOTSUPP; the loader and the attach code turn that into FeatureNotSupported with the
reason the feature probe found, instead of a bare errno or a misleading verifier error. Which
feature a section needs comes from the section table.

Example::

    feature_for_section("fexit/do_unlinkat")   # 'fexit'
    err = load_failure("fentry/vfs_read", "on_read", errno.EPERM)   # FeatureNotSupported or None
"""
from __future__ import annotations

import errno
from typing import Optional

from ..errors import ENOTSUPP, FeatureNotSupported
from ..sections import find
from .status import check

__all__ = ["REFUSALS", "feature_for_section", "refusal", "load_failure"]

REFUSALS = (errno.EPERM, errno.EOPNOTSUPP, ENOTSUPP)


def feature_for_section(section: str) -> Optional[str]:
    """The feature name a program of ``section`` needs in order to load (None: nothing special).

    Example::

        feature_for_section("fexit/do_unlinkat")   # 'fexit'
        feature_for_section("kprobe/x")           # None
    """
    m = find(section)
    return (m.definition.load_feature or None) if m is not None else None


def refusal(section: str, err: int, what: str) -> Optional[FeatureNotSupported]:
    """FeatureNotSupported for ``what`` when ``err`` is the kernel refusing the feature ``section``
    needs (None when the feature is there, so the error is about the program itself).

    Example::

        refusal("fentry/vfs_read", errno.EPERM, "cannot attach fentry/vfs_read")
    """
    feature = feature_for_section(section)
    if feature is None or err not in REFUSALS:
        return None
    ok, reason = check(feature)
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
