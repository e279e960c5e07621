"""core: the contracts every other wing builds on.

- :mod:`~restorebench.core.errors`: ``UserError`` (the one user-facing error) and ``ImageLoadError``;
- :mod:`~restorebench.core.refs`: ``name?key=value`` references and their canonical spelling;
- :mod:`~restorebench.core.interfaces`: ``Source``, ``Degradation``, ``Method``, ``Metric``, ``Task``, ...;
- :mod:`~restorebench.core.registry`: typed registries and ``register()``;
- :mod:`~restorebench.core.build`: components from references;
- :mod:`~restorebench.core.suite`: the suite YAML schema, its validation and narrowing;
- :mod:`~restorebench.core.no_reference`: what a run of photos with no reference may ask for.

May import: nothing else of restorebench. ``load_plugins()``, the one explicit discovery step,
is :mod:`restorebench.plugins`, outside the wings: it imports data/ and score/ and the tasks.
"""
