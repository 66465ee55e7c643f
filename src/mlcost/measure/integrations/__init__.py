"""mlcost.measure.integrations"""
