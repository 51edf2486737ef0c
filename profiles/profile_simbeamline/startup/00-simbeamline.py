# The beamline session (RE, bec, db, cat, spot, dot, I, motors, shutter, bp, bps, mv, ...).
from simbeamline.session import session_namespace; globals().update(session_namespace())  # noqa: E702
