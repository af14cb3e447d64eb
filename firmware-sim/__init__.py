"""The simulated switch: PBX trunks and agent handsets speaking the CTI protocol."""
