"""Attaching programs to hooks: one module per probe kind, all fd-based and owned by a Link."""
