"""mlcost.estimate"""
