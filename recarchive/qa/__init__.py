"""The QA workspace: sampling plans and the fair, reproducible samples drawn from them."""
