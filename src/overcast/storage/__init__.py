"""Moving bytes: downloads into image stores, data motion between stores and primary storage."""
