"""The registered error-model components and fit candidates.

Importing this package registers the built-ins; a new component is one module here plus
its line below (registration order is the fit's candidate order: simplest first, composites
after the components they combine). Look names up with :func:`component_class` and
:func:`fit_model`: an unknown name lists the known ones.
"""

from eden.errormodels.component import component_class, component_kinds, fit_model, fit_model_names
from eden.errormodels.components.em0 import Uniform
from eden.errormodels.components.em1 import WeakBitlines
from eden.errormodels.components.em2 import WeakWordlines
from eden.errormodels.components.em3 import DataDependent
from eden.errormodels.components.em1_em2 import WEAK_BITLINES_AND_WORDLINES

__all__ = ["component_class", "component_kinds", "fit_model", "fit_model_names", "Uniform", "WeakBitlines",
           "WeakWordlines", "DataDependent", "WEAK_BITLINES_AND_WORDLINES"]
