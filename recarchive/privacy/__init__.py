"""Privacy: data-subject requests, restrictions and objections."""
