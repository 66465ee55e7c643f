"""mlcost.report"""
