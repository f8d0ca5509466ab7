"""Read models for operators: what the agents are doing, how they did, what needs a human.

They read configuration, state and logs; they never import the run machinery
or agent code, and never take an agent's lock.
"""
