"""mlcost.finance"""
