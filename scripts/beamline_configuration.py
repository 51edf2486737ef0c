# `%run scripts/beamline_configuration.py`: the beamline session, as the IPython profile builds it.
from simbeamline.session import session_namespace; globals().update(session_namespace())  # noqa: E702
