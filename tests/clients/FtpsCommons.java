// Apache Commons Net FTPSClient (Debian's libcommons-net-java), explicit
// FTPS: PBSZ 0, PROT P, passive mode; stores FILE... and prints OK, or ERR
// and the server's reply. Run (Java 11+ runs a source file):
//   java -cp /usr/share/java/commons-net.jar FtpsCommons.java PORT USER PASSWORD FILE...
import java.io.FileInputStream;
import java.io.InputStream;
import java.nio.file.Paths;
import org.apache.commons.net.ftp.FTP;
import org.apache.commons.net.ftp.FTPSClient;
import org.apache.commons.net.util.TrustManagerUtils;

public class FtpsCommons {
    public static void main(String[] args) throws Exception {
        FTPSClient ftp = new FTPSClient(false);
        ftp.setTrustManager(TrustManagerUtils.getAcceptAllTrustManager());
        ftp.setDefaultTimeout(10000);
        ftp.connect("127.0.0.1", Integer.parseInt(args[0]));
        if (!ftp.login(args[1], args[2])) {
            System.out.println("ERR login " + ftp.getReplyString().trim());
            return;
        }
        ftp.execPBSZ(0);
        ftp.execPROT("P");
        ftp.enterLocalPassiveMode();
        ftp.setFileType(FTP.BINARY_FILE_TYPE);
        for (int i = 3; i < args.length; i++) {
            try (InputStream in = new FileInputStream(args[i])) {
                if (!ftp.storeFile(Paths.get(args[i]).getFileName().toString(), in)) {
                    System.out.println("ERR put #" + (i - 2) + " " + ftp.getReplyString().trim());
                    return;
                }
            }
        }
        ftp.logout();
        System.out.println("OK");
    }
}
