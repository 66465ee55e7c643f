"""mlcost.catalog"""
