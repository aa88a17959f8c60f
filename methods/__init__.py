"""The challenge's known unlearning methods, each a module with the challenge's entry point
``unlearning(net, retain_loader, forget_loader, validation_loader, *, profile=None, <its options>)``: every
option declared by name with :func:`~starter_kit.method_declaration.unlearning_method`, its defaults from the
setting's profile (``methods/settings.py``).

``methods.registry.METHODS`` lists them (with the project's own, in ``submission/``), found by importing every
module here and in ``submission/``; ``methods.registry.load_method(name)`` returns ``(unlearning, options)``.
"""
