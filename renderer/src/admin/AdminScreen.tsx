export function AdminScreen(): React.JSX.Element {
  return (
    <main className="admin">
      <h2>Users &amp; sessions</h2>
    </main>
  );
}
