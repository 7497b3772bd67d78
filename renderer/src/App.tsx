export function App(): React.JSX.Element {
  return (
    <main>
      <h1>Clinic Inbox</h1>
      <p>The inbox screens arrive with the receptionist desktop work.</p>
    </main>
  );
}
