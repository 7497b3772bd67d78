/**
 * Keychain account names, all under the service `clinic-inbox`. Documented in
 * `electron/core/README.md` for IT admins: these are what a backup of the keychain must hold.
 */
export function keychainAccounts(installationId: string) {
  return {
    databaseKey: `${installationId}:db-key`,
    deviceSigningKey: `${installationId}:device-signing-key`,
    deviceEncryptionKey: `${installationId}:device-encryption-key`,
    whatsappAccessToken: `${installationId}:whatsapp-access-token`,
    /** JSON array of the Meta app secrets in use (two while Meta rotates one); absent: no signature check here. */
    whatsappAppSecret: `${installationId}:whatsapp-app-secret`,
    /** The Google Calendar grant's refresh token (booking); absent while Google is not connected. */
    googleRefreshToken: `${installationId}:google-refresh-token`,
  } as const;
}
