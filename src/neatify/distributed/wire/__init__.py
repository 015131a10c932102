"""What travels between master, workers and standby: frames, checked messages, genome columns and the auth proof.
Pure data in and out: nothing here opens a socket."""
