# Arabic pages keep Django's Arabic dates and words, but numbers read as Gulf stores print
# prices: a point for decimals and a comma for thousands (890.00, 1,350.50), not 890,00.
DECIMAL_SEPARATOR = "."
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
