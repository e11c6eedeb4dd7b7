package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const testToken = "restart-test-token"

// buildServer builds this command into a temporary directory.
func buildServer(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go tool not found: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "server")
	out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build server: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// server is a running example server in a child process.
type server struct {
	t       *testing.T
	cmd     *exec.Cmd
	addr    string
	stderr  *lockedBuffer
	done    chan struct{} // closed once the process has exited
	waitErr error         // how it exited, set before done is closed
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServer runs the binary on addr with the data directory and waits
// until it listens.
func startBinary(t *testing.T, bin, addr, data string, args ...string) *server {
	t.Helper()
	args = append([]string{"-addr", addr, "-data", data, "-token", testToken, "-grace", "2s"}, args...)
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, addr: addr, stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start server: %v", err)
	}

	listening := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		found := false
		for sc.Scan() {
			if !found && strings.HasPrefix(sc.Text(), "entrance listening on") {
				found = true
				listening <- true
			}
		}
		if !found {
			listening <- false
		}
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill() // fails harmlessly once the process has exited
		<-s.done
		if t.Failed() {
			t.Logf("server log:\n%s", s.stderr.String())
		}
	})

	select {
	case ok := <-listening:
		if !ok {
			t.Fatalf("server exited before listening:\n%s", s.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("server not listening after 30 s:\n%s", s.stderr.String())
	}
	return s
}

// stop sends sig and waits for the process to exit.
func (s *server) stop(sig syscall.Signal) error {
	s.t.Helper()
	s.signal(sig)
	return s.wait()
}

func (s *server) signal(sig syscall.Signal) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal server: %v", err)
	}
}

// wait waits for the process to exit and returns how it ended.
func (s *server) wait() error {
	s.t.Helper()
	select {
	case <-s.done:
		return s.waitErr
	case <-time.After(30 * time.Second):
		s.t.Fatal("server still running 30 s after the signal")
		return nil
	}
}

// envelope is a REST reply.
type envelope struct {
	Status  int             `json:"status"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

// call sends a REST request as alice and returns the reply.
func (s *server) call(method, path string, body any) *envelope {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+s.addr+"/api/rest_j/v1/"+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Token-Code", testToken)
	req.Header.Set("Token-User", "alice")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	env := &envelope{}
	if err := json.NewDecoder(resp.Body).Decode(env); err != nil {
		s.t.Fatalf("%s %s: decode reply: %v", method, path, err)
	}
	return env
}

// submit starts a shell job and returns its taskID.
func (s *server) submit(code string) int64 {
	s.t.Helper()
	env := s.call(http.MethodPost, "entrance/execute",
		map[string]any{"executeApplicationName": "shell", "executionCode": code})
	var data struct {
		TaskID int64 `json:"taskID"`
	}
	if env.Status != 0 || json.Unmarshal(env.Data, &data) != nil {
		s.t.Fatalf("submit %q: %s %s", code, env.Message, env.Data)
	}
	return data.TaskID
}

// jobStatus is the data of a status reply.
type jobStatus struct {
	Status  string `json:"status"`
	ErrCode int    `json:"errCode"`
	ErrDesc string `json:"errDesc"`
}

func (s *server) status(taskID int64) jobStatus {
	s.t.Helper()
	env := s.call(http.MethodGet, fmt.Sprintf("entrance/%d/status", taskID), nil)
	var st jobStatus
	if env.Status != 0 || json.Unmarshal(env.Data, &st) != nil {
		s.t.Fatalf("status of job %d: %s %s", taskID, env.Message, env.Data)
	}
	return st
}

// waitStatus polls until the job has one of the statuses.
func (s *server) waitStatus(taskID int64, want ...string) jobStatus {
	s.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		st := s.status(taskID)
		for _, w := range want {
			if st.Status == w {
				return st
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("job %d is %s after 30 s, want %v", taskID, st.Status, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// log returns all lines of a job's log.
func (s *server) log(taskID int64) string {
	s.t.Helper()
	env := s.call(http.MethodGet, fmt.Sprintf("entrance/%d/log?fromLine=1&size=-1", taskID), nil)
	var data struct {
		Log []string `json:"log"`
	}
	if env.Status != 0 || json.Unmarshal(env.Data, &data) != nil || len(data.Log) != 4 {
		s.t.Fatalf("log of job %d: %s %s", taskID, env.Message, env.Data)
	}
	return data.Log[3]
}

// snapshot returns the replies that describe a finished job.
func (s *server) snapshot(taskID int64) []string {
	s.t.Helper()
	paths := []string{
		fmt.Sprintf("entrance/%d/status", taskID),
		fmt.Sprintf("entrance/%d/log?fromLine=1&size=-1", taskID),
		"filesystem/openFile?path=" + url.QueryEscape(fmt.Sprintf("result://%d/_0.dolphin", taskID)),
	}
	var out []string
	for _, p := range paths {
		env := s.call(http.MethodGet, p, nil)
		if env.Status != 0 {
			s.t.Fatalf("%s: %s", p, env.Message)
		}
		out = append(out, string(env.Data))
	}
	return out
}

var pidLine = regexp.MustCompile(`(?m)^(shell|child) (\d+)$`)

// jobPIDs waits until a job has logged the pids of its shell and its
// background child.
func (s *server) jobPIDs(taskID int64) []int {
	s.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if m := pidLine.FindAllStringSubmatch(s.log(taskID), -1); len(m) == 2 {
			var pids []int
			for _, sub := range m {
				pid, _ := strconv.Atoi(sub[2])
				pids = append(pids, pid)
			}
			return pids
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("job %d did not log its pids", taskID)
	return nil
}

// groupMembers returns the pids of the processes of a process group that
// are not zombies. Zombies count as ended: their parent, which may be an
// init process that does not reap, has yet to collect them.
func groupMembers(t *testing.T, pgid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("list processes: %v", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // ended meanwhile
		}
		// After the command name, in parentheses: state, ppid, pgrp.
		i := bytes.LastIndexByte(stat, ')')
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 3 || fields[0] == "Z" {
			continue
		}
		if group, _ := strconv.Atoi(fields[2]); group == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// pidScript prints the pids of its shell and of a background child, then
// waits; both run in the job's process group.
const pidScript = "sleep 300 &\necho child $!\necho shell $$\nsleep 300"

func TestRestartAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	bin := buildServer(t)
	addr, data := freeAddr(t), t.TempDir()
	a := startBinary(t, bin, addr, data, "-max-running", "1")

	finished := a.submit("echo hello; echo world >&2")
	a.waitStatus(finished, "Succeed")
	before := a.snapshot(finished)
	running := a.submit(pidScript)
	a.waitStatus(running, "Running")
	a.jobPIDs(running) // waits until the background child runs
	pgid := recordedProcess(t, data, running)
	t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) })
	queued := []int64{a.submit("echo q1"), a.submit("echo q2")}
	for _, id := range queued {
		a.waitStatus(id, "Scheduled")
	}

	a.stop(syscall.SIGKILL)
	if pids := groupMembers(t, pgid); len(pids) < 2 {
		t.Fatalf("process group %d of the running job has %v after the kill, want its "+
			"shell and sleeps", pgid, pids)
	}

	b := startBinary(t, bin, addr, data, "-max-running", "1")
	st := b.waitStatus(running, "Failed", "Succeed", "Cancelled", "Timeout")
	if st.Status != "Failed" || !strings.Contains(st.ErrDesc, "server stopped") {
		t.Errorf("job running at the kill: %+v, want Failed saying the server stopped", st)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		pids := groupMembers(t, pgid)
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v of the interrupted job still run 10 s after the restart", pids)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, id := range queued {
		if st := b.waitStatus(id, "Succeed", "Failed", "Cancelled", "Timeout"); st.Status != "Succeed" {
			t.Errorf("queued job %d ended %+v after the restart", id, st)
		}
	}
	if after := b.snapshot(finished); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("finished job changed across the restart:\nbefore %q\nafter  %q", before, after)
	}
	if id := b.submit("echo new"); id <= queued[1] {
		t.Errorf("new job got taskID %d, not above the old ones (up to %d)", id, queued[1])
	}
}

func TestRestartAfterTerm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	bin := buildServer(t)
	addr, data := freeAddr(t), t.TempDir()
	a := startBinary(t, bin, addr, data, "-max-running", "2")

	// The quick job ends once the gate file exists.
	gate := filepath.Join(t.TempDir(), "gate")
	quick := a.submit("while [ ! -e " + gate + " ]; do sleep 0.05; done; echo quick-done")
	slow := a.submit("echo slow-started; sleep 300")
	a.waitStatus(quick, "Running")
	a.waitStatus(slow, "Running")
	queued := a.submit("echo queued-done")
	a.waitStatus(queued, "Scheduled")

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ws := a.watch(ctx, slow)

	start := time.Now()
	a.signal(syscall.SIGTERM)
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.wait(); err != nil {
		t.Errorf("server exited with %v after SIGTERM, want success", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("shutdown took %v with a grace period of 2 s", took)
	}
	final, closeErr := readUntilClose(ctx, ws)
	if !strings.Contains(final, `"Cancelled"`) || !strings.Contains(final, "shut down") {
		t.Errorf("watcher's last status push before the close: %s", final)
	}
	if code := websocket.CloseStatus(closeErr); code != websocket.StatusGoingAway {
		t.Errorf("watcher's connection ended with %v, want close code 1001", closeErr)
	}

	b := startBinary(t, bin, addr, data, "-max-running", "2")
	if st := b.status(quick); st.Status != "Succeed" {
		t.Errorf("job that finished within the grace period: %+v", st)
	}
	if st := b.status(slow); st.Status != "Cancelled" || !strings.Contains(st.ErrDesc, "shut down") {
		t.Errorf("job cancelled at the end of the grace period: %+v", st)
	}
	if !strings.Contains(b.log(quick), "quick-done") {
		t.Errorf("log of the finished job: %q", b.log(quick))
	}
	if st := b.waitStatus(queued, "Succeed", "Failed", "Cancelled", "Timeout"); st.Status != "Succeed" {
		t.Errorf("queued job ended %+v after the restart", st)
	}
}

// watch opens a WebSocket connection subscribed to a job.
func (s *server) watch(ctx context.Context, taskID int64) *websocket.Conn {
	s.t.Helper()
	h := http.Header{}
	h.Set("Token-Code", testToken)
	h.Set("Token-User", "alice")
	conn, _, err := websocket.Dial(ctx, "ws://"+s.addr+"/api/rest_j/v1/entrance/connect",
		&websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		s.t.Fatalf("dial: %v", err)
	}
	s.t.Cleanup(func() { conn.CloseNow() })
	req := fmt.Sprintf(`{"method":"/api/rest_j/v1/entrance/%d/status","data":{}}`, taskID)
	if err := conn.Write(ctx, websocket.MessageText, []byte(req)); err != nil {
		s.t.Fatalf("subscribe: %v", err)
	}
	return conn
}

// readUntilClose reads until the connection ends and returns the last
// status push and the error that ended it.
func readUntilClose(ctx context.Context, conn *websocket.Conn) (string, error) {
	var last string
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			return last, err
		}
		if bytes.Contains(b, []byte(`"message":"status"`)) {
			last = string(b)
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return last, ctx.Err()
		}
	}
}

// recordedProcess returns the process group that the server recorded for
// a job in its store. The job's own view of its pids is of no use here,
// because the shell engine may run it in a PID namespace.
func recordedProcess(t *testing.T, data string, taskID int64) int {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(data, "entrance.db")+"?mode=ro")
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	defer db.Close()
	var pgid int
	err = db.QueryRow(`SELECT process FROM jobs WHERE task_id = ?`, taskID).Scan(&pgid)
	if err != nil || pgid <= 0 {
		t.Fatalf("read process group of job %d: %d, %v", taskID, pgid, err)
	}
	return pgid
}
