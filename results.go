package entrance

import (
	"context"
	"strconv"
	"strings"
)

// Result locations are opaque strings that name stored result sets, never
// files: "result://<taskID>" for a job's results and
// "result://<taskID>/_<index>.dolphin" for one result set. Nothing else
// resolves, so no path reaches the server's file system.
const resultScheme = "result://"

func resultLocation(taskID int64) string {
	return resultScheme + strconv.FormatInt(taskID, 10)
}

func resultSetPath(taskID int64, index int) string {
	return resultLocation(taskID) + "/_" + strconv.Itoa(index) + ".dolphin"
}

// parseResultPath reads a result location (index -1) or a result set
// path. Only the exact form that resultLocation and resultSetPath write is
// accepted: no leading zeros, no dot segments, no escapes, so that each
// result set has one name and nothing else resolves.
func parseResultPath(path string) (taskID int64, index int, ok bool) {
	rest, found := strings.CutPrefix(path, resultScheme)
	if !found {
		return 0, 0, false
	}
	task, file, hasFile := strings.Cut(rest, "/")
	taskID, ok = parseDecimal(task)
	if !ok || taskID <= 0 {
		return 0, 0, false
	}
	index = -1
	if hasFile {
		name, found := strings.CutPrefix(file, "_")
		name, dolphin := strings.CutSuffix(name, ".dolphin")
		n, digits := parseDecimal(name)
		if !found || !dolphin || !digits || n > 1<<30 {
			return 0, 0, false
		}
		index = int(n)
	}
	canonical := resultLocation(taskID)
	if index >= 0 {
		canonical = resultSetPath(taskID, index)
	}
	return taskID, index, path == canonical
}

// parseDecimal parses a non-empty string of ASCII digits.
func parseDecimal(s string) (int64, bool) {
	if s == "" || len(s) > 18 || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// resultTarget resolves the path parameter of a filesystem request to a
// job the caller may read, and the index of the result set it names (-1
// for a result location).
func (s *Server) resultTarget(ctx context.Context, r *request) (*target, int, *apiError) {
	path, aerr := r.params.str("path")
	if aerr != nil {
		return nil, 0, aerr
	}
	if path == "" {
		return nil, 0, errorf(ReplyError, ErrCodeInvalidParam,
			"path is missing: send a resultLocation from jobhistory")
	}
	taskID, index, found := parseResultPath(path)
	if !found {
		return nil, 0, errorf(ReplyError, ErrCodeInvalidParam,
			"invalid path %q: only result locations of this server, such as %s or %s, can be read",
			shorten(path, 200), resultLocation(1), resultSetPath(1, 0))
	}
	sub := *r
	sub.id = strconv.FormatInt(taskID, 10)
	t, aerr := s.lookup(ctx, &sub)
	switch {
	case aerr == nil:
		return t, index, nil
	case aerr.code == ErrCodeJobNotFound:
		return nil, 0, errorf(ReplyError, ErrCodeJobNotFound,
			"path %s not found: job %d does not exist", path, taskID)
	case aerr.code == ErrCodeForbidden:
		return nil, 0, errorf(ReplyForbidden, ErrCodeForbidden,
			"permission denied: path %s belongs to another user's job", path)
	}
	return nil, 0, aerr
}

// fileTree is one node of a getDirFileTrees reply.
type fileTree struct {
	Name     string     `json:"name"`
	Path     string     `json:"path"`
	IsLeaf   bool       `json:"isLeaf"`
	Children []fileTree `json:"children"`
}

func (s *Server) handleDirFileTrees(ctx context.Context, r *request) (*Envelope, *apiError) {
	t, index, aerr := s.resultTarget(ctx, r)
	if aerr != nil {
		return nil, aerr
	}
	if index >= 0 {
		return nil, errorf(ReplyError, ErrCodeInvalidParam,
			"path names a result set, not a result location: use filesystem/openFile for it")
	}
	sets, err := s.store.ResultSets(ctx, t.taskID)
	if err != nil {
		s.logger.Error("list result sets failed", "taskID", t.taskID, "error", err)
		return nil, errorf(ReplyError, ErrCodeInternal, "list results of job %d: %v", t.taskID, err)
	}
	root := fileTree{Name: strconv.FormatInt(t.taskID, 10), Path: resultLocation(t.taskID),
		Children: make([]fileTree, 0, len(sets))}
	for _, set := range sets {
		root.Children = append(root.Children, fileTree{
			Name: "_" + strconv.Itoa(set.Index) + ".dolphin", Path: resultSetPath(t.taskID, set.Index),
			IsLeaf: true, Children: []fileTree{}})
	}
	return ok("OK", map[string]any{"dirFileTrees": root}), nil
}

// Paging bounds of filesystem/openFile.
const (
	defaultResultPage = 5000
	maxResultPage     = 50000
)

func (s *Server) handleOpenFile(ctx context.Context, r *request) (*Envelope, *apiError) {
	t, index, aerr := s.resultTarget(ctx, r)
	if aerr != nil {
		return nil, aerr
	}
	if index < 0 {
		return nil, errorf(ReplyError, ErrCodeInvalidParam,
			"path names a result location, not a result set: list it with filesystem/getDirFileTrees")
	}
	page, size, aerr := readPage(r.params, "page", "pageSize", defaultResultPage, maxResultPage)
	if aerr != nil {
		return nil, aerr
	}
	set, aerr := s.resultSet(ctx, t.taskID, index)
	if aerr != nil {
		return nil, aerr
	}
	rows, err := s.store.ReadRows(ctx, t.taskID, index, (page-1)*size, size)
	if err != nil {
		s.logger.Error("read result rows failed", "taskID", t.taskID, "index", index, "error", err)
		return nil, errorf(ReplyError, ErrCodeInternal, "read result of job %d: %v", t.taskID, err)
	}
	data := map[string]any{
		"type":      strconv.Itoa(int(set.Meta.Kind)),
		"totalLine": set.Rows,
		"page":      page,
		"totalPage": (set.Rows + size - 1) / size,
	}
	if set.Meta.Kind == ResultTable {
		columns := set.Meta.Columns
		if columns == nil {
			columns = []Column{}
		}
		if rows == nil {
			rows = [][]*string{}
		}
		data["metadata"], data["fileContent"] = columns, rows
	} else {
		data["metadata"], data["fileContent"] = "NULL", joinText(rows)
	}
	return ok("OK", data), nil
}

func (s *Server) resultSet(ctx context.Context, taskID int64, index int) (*ResultSetInfo, *apiError) {
	sets, err := s.store.ResultSets(ctx, taskID)
	if err != nil {
		s.logger.Error("list result sets failed", "taskID", taskID, "error", err)
		return nil, errorf(ReplyError, ErrCodeInternal, "list results of job %d: %v", taskID, err)
	}
	for i := range sets {
		if sets[i].Index == index {
			return &sets[i], nil
		}
	}
	return nil, errorf(ReplyError, ErrCodeJobNotFound,
		"result set %s not found", resultSetPath(taskID, index))
}

// joinText joins the rows of a text result set into its text.
func joinText(rows [][]*string) string {
	var b strings.Builder
	for i, row := range rows {
		if i > 0 {
			b.WriteByte('\n')
		}
		if len(row) > 0 && row[0] != nil {
			b.WriteString(*row[0])
		}
	}
	return b.String()
}

// ResultSet starts a result set of the job. It implements Output.
func (j *job) ResultSet(ctx context.Context, meta ResultMeta) (ResultWriter, error) {
	index, err := j.srv.store.CreateResultSet(ctx, j.id.taskID, meta)
	if err != nil {
		return nil, err
	}
	return &resultWriter{store: j.srv.store, taskID: j.id.taskID, index: index}, nil
}

// resultWriter stores rows in batches.
type resultWriter struct {
	store  Store
	taskID int64
	index  int
	batch  [][]*string
}

const resultBatchRows = 500

func (w *resultWriter) WriteRow(ctx context.Context, row []*string) error {
	w.batch = append(w.batch, row)
	if len(w.batch) < resultBatchRows {
		return nil
	}
	return w.flush(ctx)
}

func (w *resultWriter) flush(ctx context.Context) error {
	if len(w.batch) == 0 {
		return nil
	}
	err := w.store.AppendRows(ctx, w.taskID, w.index, w.batch)
	w.batch = w.batch[:0]
	return err
}

func (w *resultWriter) Close(ctx context.Context) error { return w.flush(ctx) }
