"""Learning-rate schedules of the Win-Win recipe, as lists of mmengine scheduler configs."""
from .phase_restart import phase_restart_schedule

__all__ = ['phase_restart_schedule']
