"""The registered error-model components and fit candidates.

Importing this package registers the built-ins. A new component is one module here plus one
``register(...)`` line below; a new composite fit candidate, one module plus one
``register_fit_model(...)`` line. Registration order is the fit's candidate order (simplest
first, composites after the components they combine); it also seeds each candidate's
goodness-of-fit Monte Carlo, so new entries go at the end. Look names up with
:func:`component_class` and :func:`fit_model`: an unknown name lists the known ones.
"""

from eden.errormodels.component import (component_class, component_kinds, fit_model, fit_model_names, register,
                                        register_fit_model)
from eden.errormodels.components.em0 import Uniform
from eden.errormodels.components.em1 import WeakBitlines
from eden.errormodels.components.em1_em2 import WeakBitlinesAndWordlines
from eden.errormodels.components.em2 import WeakWordlines
from eden.errormodels.components.em3 import DataDependent
from eden.errormodels.components.emc import ClusteredIntersections
from eden.errormodels.components.emg import GroupedLineEvents
from eden.errormodels.components.eml import LineEvents

register(Uniform)
register(WeakBitlines)
register(WeakWordlines)
register(DataDependent)
register_fit_model(WeakBitlinesAndWordlines)
register(ClusteredIntersections)
register(LineEvents)
register(GroupedLineEvents)

__all__ = ["component_class", "component_kinds", "fit_model", "fit_model_names", "Uniform", "WeakBitlines",
           "WeakWordlines", "DataDependent", "WeakBitlinesAndWordlines",
           "ClusteredIntersections", "LineEvents", "GroupedLineEvents"]
