"""mlcost.measure.meters"""
