export function AuditScreen(): React.JSX.Element {
  return (
    <main className="audit">
      <h2>Audit log</h2>
    </main>
  );
}
