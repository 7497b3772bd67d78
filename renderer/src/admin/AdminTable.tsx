import type { ReactNode } from 'react';

/** A scrollable table with one header row; the rows come as children. */
export function AdminTable({ testId, columns, children }: { testId: string; columns: string[]; children: ReactNode }): React.JSX.Element {
  return (
    <div className="table-scroll">
      <table className="admin-table" data-testid={testId}>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c} scope="col">
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}
