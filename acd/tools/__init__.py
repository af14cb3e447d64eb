"""Technicians' and supervisors' tools behind the command line and the web console:
replay of captures, the monitor's view, the simulated clock, the web pages.
"""
