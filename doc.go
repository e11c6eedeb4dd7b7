// Package entrance is an embeddable server for the Apache Linkis Entrance
// job protocol. An application mounts a *Server, which is an http.Handler,
// in its own mux. Clients submit code over WebSocket or REST, get an
// execID and a taskID back, and receive every status change, log line and
// progress update of their jobs as pushes.
//
// The parts:
//
//   - Server (entrance.go): New, ServeHTTP, Shutdown. Options and Limits
//     configure it; nil and zero values mean documented defaults.
//   - Engine (engine.go): what runs code. Adapters implement Run and write
//     log lines, progress and result sets to an Output. The shell and
//     sqlite subpackages of engines are two complete adapters.
//   - Store (store.go): issues taskIDs and keeps jobs, logs and results.
//     The sqlitestore subpackage implements it on SQLite.
//   - Fanout (hub.go): routes each encoded push to the connections
//     subscribed to its job. Hub is the in-process implementation.
//   - Authenticator (auth.go): maps a request to a user.
//     TokenAuthenticator implements Linkis token authentication.
//   - FormatExecID and ParseExecID (execid.go): the execID formats.
//   - SubstituteVariables (variables.go): ${name} substitution, done once
//     for every engine.
//
// Every request is one API call, whichever transport carries it: a
// WebSocket frame {"method": "/api/rest_j/v1/entrance/execute", "data":
// {...}} and a REST POST to the same path return the same envelope
// {"method", "status", "message", "data"}.
package entrance
