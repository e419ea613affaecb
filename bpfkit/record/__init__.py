"""Recording event batches to Parquet and replaying them: :class:`Recorder` streams a ring or perf
buffer's batches to a file whose schema comes from the record type, with the loss counts in its
metadata; :func:`replay` gives the same batches back, offline. ``bpfkit record`` is the command.

Example::

    with obj.attach(), bpfkit.Recorder("out.parquet", reader=obj.reader("events")) as rec:
        rec.record(duration=10)
    for batch in bpfkit.replay("out.parquet"):
        print(batch["pid"][:5])
"""
from .recorder import COMPRESSIONS, META, ROWS_PER_GROUP, Recorder
from .recording import Recording, replay

__all__ = ["Recorder", "Recording", "replay", "META", "ROWS_PER_GROUP", "COMPRESSIONS"]
