package entrance

// SetJobEndHook makes every job call hook with its taskID after its final
// status is stored and pushed, while it is still live. It returns the
// function that removes the hook.
func SetJobEndHook(hook func(taskID int64)) (restore func()) {
	testHookJobEnded = hook
	return func() { testHookJobEnded = nil }
}

// ConnCount returns the number of open WebSocket connections.
func (s *Server) ConnCount() int {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	return len(s.conns)
}

// Subscribers returns the number of connections subscribed to a job. The
// server must use the default Hub.
func (s *Server) Subscribers(taskID int64) int {
	return s.hub.(*Hub).subscribers(taskID)
}
