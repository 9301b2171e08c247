"""Reading runs back: episodes from trajectories, and the report built from them."""
