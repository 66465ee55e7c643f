"""mlcost.plan"""
