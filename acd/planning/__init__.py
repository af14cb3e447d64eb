"""Planning and reporting: Erlang staffing, traffic profiles, reports from the call
records, forecasts and the agents they need, and the what-if runs of the core engine
against the simulated switch (also with a schedule: the twin).
"""
