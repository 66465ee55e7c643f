"""mlcost.calibrate"""
