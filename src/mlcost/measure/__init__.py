"""mlcost.measure"""
