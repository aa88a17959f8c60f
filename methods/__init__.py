"""The challenge's known unlearning methods, each a module with the challenge's entry point
``unlearning(net, retain_loader, forget_loader, validation_loader, **options)``.

``methods.registry.METHODS`` lists them (with the project's own, in ``submission/``);
``methods.registry.load_method(name)`` returns ``(unlearning, options)``.
"""
